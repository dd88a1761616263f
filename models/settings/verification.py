"""Verified resolution (models/verification.py): the probes a quiet incident must pass."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.verification import parse_probes

__all__ = ["VerificationSettings"]


class VerificationSettings(BaseModel):
    """Health and PromQL probes per service that must pass before an incident resolves."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    verify_probes: str = Field(
        default="",
        description="Verification probes per service, as JSON: a list of {service, http_url "
        "(must answer 2xx), promql + prometheus_url (must return a non-empty, truthy result)}; "
        "https, or plain http to a loopback or private address. An incident of a service with a "
        "probe resolves only once its probe passed in the quiet period; a failure keeps it in "
        'monitoring and starts the quiet period again. E.g. [{"service": "api", "http_url": '
        '"https://api.example.com/health"}]. Unset: no probes (the quiet period alone resolves).',
    )
    verify_file: Path | None = Field(
        default=None,
        description="A JSON file of verification probes, in SEVFLOW_VERIFY_PROBES' format, "
        "added to them. Unset: SEVFLOW_VERIFY_PROBES only.",
    )
    verify_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="Seconds between two runs of an incident's probe during its quiet period.",
    )
    verify_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3_600,
        description="How long one probe request may take before it counts as failed.",
    )
    probe_results_topic: str = Field(
        default="sevflow-probe-results",
        description="Topic the worker publishes verification probe results on and applies them "
        "from (keyed by incident id), so a replay reaches the same decisions.",
    )

    probe_results_quarantine_topic: str = Field(
        default="sevflow-probe-results-quarantine",
        description="Where the worker sets aside probe-result records it can never apply (not "
        "decodable, or refused by the store for good), with the reason and the original bytes, "
        "as for alerts and commands (sevflow dlq list --quarantine).",
    )

    @field_validator("verify_probes")
    @classmethod
    def _probes_parse(cls, value: str) -> str:
        parse_probes(value)  # a bad probe fails at start, naming it
        return value
