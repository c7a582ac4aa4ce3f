"""`llmtrace demo`: an instrumented workload against the local emulator, shown live, with a scenario
that breaks prompt caching the way production does, a summary and an HTML report."""
