"""The order in which pytest-xdist's workers get the test modules (`make test`: ``--dist loadscope``).

xdist hands out modules in its own order, the most tests first, so the modules with a few long
tests (a browser, a server, a whole-bank check) came last and one worker ran them while the other
idled. Here each worker always gets the longest module left: the modules below by their measured
time, any other by its number of tests. The order changes only when a test runs, never what it runs.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Seconds of one run with two workers (load 7, 2026-12-01; only their ranking matters; the load
# benchmark's and test_threats_input's scaled on 2026-12-02 by what their modules lost alone). A module
# missing here (a new one) counts SECONDS_PER_TEST for each of its tests.
MEASURED = {
    "tests/e2e/test_instructor_browser.py": 170, "tests/bank/test_seed_batch.py": 140,
    "tests/test_load_benchmark.py": 80, "tests/web/test_threats_input.py": 78, "tests/e2e/test_lti_browser.py": 99,
    "tests/web/test_bank_checks.py": 95, "tests/web/test_lti.py": 95, "tests/web/test_fuzz.py": 95,
    "tests/e2e/test_student_pages.py": 92, "tests/bank/test_ecf_shortcut.py": 92, "tests/test_cli_bank.py": 80,
    "tests/e2e/test_multihost.py": 75, "tests/web/test_threats_staletab.py": 70, "tests/web/test_instructor.py": 62,
    "tests/e2e/test_threats_serving.py": 57, "tests/bank/test_drawer.py": 53, "tests/e2e/test_multipart_browser.py": 53,
    "tests/e2e/test_browser.py": 53, "tests/e2e/test_csp_browser.py": 50, "tests/bank/test_validate_shared_work.py": 50,
    "tests/e2e/test_figures_browser.py": 49, "tests/e2e/test_serve_preload.py": 45, "tests/bank/test_threats_nokey.py": 41,
    "tests/e2e/test_crash.py": 38, "tests/web/test_threats_bankfiles.py": 35, "tests/web/test_figures_pages.py": 34,
    "tests/web/test_threats_auth.py": 31, "tests/web/test_instructor_forms.py": 29, "tests/web/test_rendering_cache.py": 28,
    "tests/bank/test_validate_fast_paths.py": 26, "tests/web/test_schemathesis.py": 25,
}
SECONDS_PER_TEST = 0.4


class LongestFirst(LoadScopeScheduling):
    """loadscope, but a worker asking for work gets the longest module (or class) still waiting."""

    def _weight(self, scope: str) -> float:
        return MEASURED.get(scope.split("::")[0], SECONDS_PER_TEST * len(self.workqueue[scope]))

    def _assign_work_unit(self, node) -> None:  # type: ignore[no-untyped-def]
        longest = max(self.workqueue, key=self._weight)
        self.workqueue.move_to_end(longest, last=False)  # xdist hands out the first one
        super()._assign_work_unit(node)
