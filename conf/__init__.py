# Makes conf/ importable as the package normbench.conf (see pyproject.toml), so an
# installed normbench finds its configs with Hydra's pkg://normbench.conf.
