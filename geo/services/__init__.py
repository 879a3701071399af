"""Service functions: one operation each (load a file with its report, partition one or many jurisdictions,
publish a plan), called alike by the CLI (:mod:`geo.cli`), the API, the job worker (:mod:`geo.jobs`) and the
benchmarks. They raise exceptions with clear messages; they never print or exit.
"""
