"""Settings of ``sevflow run``: when a role that exited is started again."""

from pydantic import BaseModel, ConfigDict, Field

from models.supervision import RestartPolicy

__all__ = ["RunSettings"]


class RunSettings(BaseModel):
    """The restart policy of ``sevflow run`` (systemd's StartLimitBurst/StartLimitIntervalSec,
    Kubernetes' CrashLoopBackOff)."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    restart_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3_600,
        description="sevflow run: seconds before a role that exited is started again; doubled for "
        "each earlier exit within SEVFLOW_RESTART_WINDOW_SECONDS.",
    )
    restart_backoff_max_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3_600,
        description="sevflow run: the longest wait before starting a role again.",
    )
    restart_limit: int = Field(
        default=5,
        ge=1,
        le=1_000,
        description="sevflow run: a role exiting this many times within "
        "SEVFLOW_RESTART_WINDOW_SECONDS crash-loops: sevflow run stops every role and exits 1.",
    )
    restart_window_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="sevflow run: the window in which SEVFLOW_RESTART_LIMIT exits of one role "
        "count as a crash loop.",
    )

    def restart_policy(self) -> RestartPolicy:
        return RestartPolicy(
            backoff=self.restart_backoff_seconds,
            backoff_max=self.restart_backoff_max_seconds,
            limit=self.restart_limit,
            window=self.restart_window_seconds,
        )
