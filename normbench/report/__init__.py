"""``normbench report``: compare runs across seeds, as tables and pictures.

    normbench report                          # the newest sweep under outputs/
    normbench report PATH ... --by norm --baseline norm=none --metric final_val_acc

load.py (run directories -> pandas frames, with skip warnings), stats.py (t and Welch
intervals, Holm, power), table.py (one row per configuration group), text.py (the table
as text and safe CSV), facts.py (what is said before the table), style.py, plots.py,
activations.py and pictures.py (matplotlib pictures), page.py (report.html),
command.py (the options and the order of the work). Reads only files; imports no
training code, and pandas and matplotlib only here.
"""
