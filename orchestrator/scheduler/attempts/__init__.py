"""One attempt's life: what an attempt is (``attempt``) and the attempts in flight with their
slots (``inflight``); running it from claim to workflow (``runner``); its fenced store writes
(``writes``); what its result means (``settler``: retry, park with ``adapter_parks``, fail)
and landing its branch (``lander``)."""
