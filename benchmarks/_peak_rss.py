"""Run the structx CLI in this process and print its peak RSS in KiB (for bench_batch.py memory)."""

import contextlib
import resource
import sys

from structx._cli import main

sys.argv = ["structx", *sys.argv[1:]]
with contextlib.suppress(SystemExit):
    main()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
