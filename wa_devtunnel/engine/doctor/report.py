"""What a doctor check reports, and what the checks look at: shared by the local, reach and Graph checks."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from wa_devtunnel.engine.instance import RunningInstance
from wa_devtunnel.settings import ConfigError, Settings


class Status(StrEnum):
    """A check's verdict; only FAIL makes `doctor` exit 1."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report: what was checked, the verdict, and one line of fix."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """For `doctor --json`."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class DoctorInput:
    """What the checks look at: raw values (to catch what Settings would refuse) and lenient settings."""

    settings: Settings
    environ: Mapping[str, str]
    env_file: Path
    env_problems: tuple[str, ...]
    config_errors: tuple[ConfigError, ...]
    url: str | None
    instance: RunningInstance | None
    ssl_context: ssl.SSLContext | None = None
