"""The teacher as the two teacher stages get it: loaded only if one of them must run."""

from __future__ import annotations

from typing import Any

from stratdistill.teachers import Teacher, load_teacher, unload_teacher


class TeacherOnce:
    """Gets the teacher only if a stage needs it (both teacher stages are often reused), from the
    process's loaded teacher (:func:`stratdistill.teachers.load_teacher`: the points of a temperature
    or seed sweep in one process share one load; the temperature goes to each call).

    :meth:`release` frees a teacher that holds model weights (a GPU full of teacher) when the run goes
    on to train the student; with ``until=teacher`` nothing follows, so it stays loaded for the next
    sweep point."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._teacher: Teacher | None = None

    def __call__(self) -> Teacher:
        if self._teacher is None:
            self._teacher = load_teacher(self.cfg.teacher, self.cfg.cache_dir, self.cfg.seed)
        return self._teacher

    def release(self) -> None:
        if self._teacher is None:
            return
        teacher, self._teacher = self._teacher, None
        if teacher.holds_model and self.cfg.until != "teacher":
            del teacher
            unload_teacher()
