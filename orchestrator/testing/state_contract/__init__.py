"""The contract every ``StateStore`` backend must pass, as a reusable pytest class.

A backend's test module subclasses ``StateStoreContract`` and provides a ``store`` fixture::

    class TestMyStore(StateStoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            async with MyStore(...) as store:
                yield store

Tests only use the protocol, so they hold for any backend (file now, PostgreSQL later). Each
subject is a mixin of its own module: ``tasks``, ``task_changes``, ``claims``, ``sessions`` (and
checkpoints), ``records`` (keyed records and the conflict strategies), ``record_and_task``,
``carried``, ``keyed_batch``, ``delete_after``, ``events``,
``history``, ``ttl``, ``context``, ``health``, ``transactions``, ``watch``, ``validators``,
``task_strategies``.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from orchestrator.testing.state_contract.carried import CarriedContract
from orchestrator.testing.state_contract.claims import ClaimsContract
from orchestrator.testing.state_contract.context import ContextContract
from orchestrator.testing.state_contract.delete_after import DeleteAfterContract
from orchestrator.testing.state_contract.events import EventsContract
from orchestrator.testing.state_contract.health import HealthContract
from orchestrator.testing.state_contract.history import HistoryContract
from orchestrator.testing.state_contract.keyed_batch import KeyedBatchContract
from orchestrator.testing.state_contract.record_and_task import RecordAndTaskContract
from orchestrator.testing.state_contract.records import RecordsContract
from orchestrator.testing.state_contract.release_first import ReleaseFirstContract
from orchestrator.testing.state_contract.sessions import SessionsContract
from orchestrator.testing.state_contract.stored import StoredContract
from orchestrator.testing.state_contract.task_changes import TaskChangesContract
from orchestrator.testing.state_contract.task_strategies import TaskStrategiesContract
from orchestrator.testing.state_contract.tasks import TasksContract
from orchestrator.testing.state_contract.transactions import TransactionsContract
from orchestrator.testing.state_contract.ttl import TtlContract
from orchestrator.testing.state_contract.validators import ValidatorsContract
from orchestrator.testing.state_contract.watch import WatchContract

__all__ = ["StateStoreContract"]


class StateStoreContract(
    TasksContract,
    TaskChangesContract,
    ClaimsContract,
    SessionsContract,
    RecordsContract,
    RecordAndTaskContract,
    CarriedContract,
    KeyedBatchContract,
    ReleaseFirstContract,
    DeleteAfterContract,
    EventsContract,
    HistoryContract,
    TtlContract,
    ContextContract,
    HealthContract,
    TransactionsContract,
    WatchContract,
    ValidatorsContract,
    TaskStrategiesContract,
    StoredContract,
):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]
