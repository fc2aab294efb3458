"""What the tests share: helper modules, the fake CLIs (fault_clis/), recorded CLI output
(transcripts/) and reference texts (reference/). Nothing here is collected as a test."""
