"""One composition root per role: each builds its role from :class:`Settings` in one function a
reader can follow top to bottom (engine, store, clients, the pipeline or the fan-out, the servers).

* :mod:`sevflow.roles.receiver`: ``sevflow receiver``, the webhook, the incident API, callbacks;
* :mod:`sevflow.roles.worker`: ``sevflow worker``, the faust agents and timers around the pipeline;
* :mod:`sevflow.roles.sinks`: ``sevflow sinks``, the fan-out of incident events to the sinks;
* :mod:`sevflow.roles.startup`: what every role checks or prepares before it starts.

``sevflow run`` runs the three as child processes (:mod:`sevflow.supervise`).
"""
