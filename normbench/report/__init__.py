"""``normbench report``: compare runs across seeds, as tables and pictures.

    normbench report                          # the newest sweep under outputs/
    normbench report PATH ... --by norm --baseline norm=none --metric final_val_acc

load.py (run directories -> pandas frames, with skip warnings), stats.py (t, Welch,
Banerjee and paired intervals, Holm), power.py (seeds a difference would need), table.py
(one row per configuration group), verdicts.py (the comparison with the baseline and what
its verdicts rest on), text.py (the table as text and safe CSV), facts.py (what is said before the table), style.py, plots.py,
activations.py and pictures.py (matplotlib pictures), page.py (report.html),
command.py (the options and the order of the work). Reads only files; imports no
training code, and pandas and matplotlib only here.
"""
