"""`attn schedule`: the ring schedule of self-attention as units of work, the kernel's own order in
that model, and (with python-sat, `pip install 'attnlang[sat]'`) the shortest schedule proven by SAT.

ring.py  the work-unit model and the kernel's schedule in it (no solver needed)
sat.py   the SAT encoding and the search for the fewest steps, with the UNSAT proof one step below
drup.py  the DRUP proof checker; emit.py: the schedule as an .attn kernel
(the command is attnlang/cli/schedule.py)
"""
