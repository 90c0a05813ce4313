"""Sweeps: ``normbench train -m ...``, Hydra's multirun with normbench's guarantees.

    sweeper.py    the sweeper: grid -> checked configs -> duplicates -> launch -> tally
    grid.py       the grid from the parsed overrides, and each job's directory name
    job.py        the wrapper around one run: skip, continue, restart, threads, GPU slot,
                  failure -> summary, one line when it ends
    tally.py      what became of each job, and what to run next
    resume.py     resume=true and resume=<sweep dir>: the sweep to finish
    resources.py  jobs at once, threads per job, GPU slots

Hydra's stock launchers run the jobs (joblib locally, submitit on SLURM); normbench
schedules nothing itself. A single run imports none of this package.
"""
