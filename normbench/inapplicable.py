"""``n/a``: what a setting reads when it cannot change a run (``placement`` with
``norm=none``, the augmentation's settings without one, ...). A leaf module: the axes
write it (``augment.same``, ``budget.same``), ``identity.canonical`` gathers them, and the
report and the HParams tab read it."""

NOT_APPLICABLE = "n/a"
