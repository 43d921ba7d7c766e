"""Run a command; print its peak resident memory as the last line (`PEAK_RSS_KB n`) and exit with its code.

Linux carries a process's memory high-water mark across exec, so a command started straight from the
benchmark driver (which holds large result sets) would report the driver's peak. Started from this small
process instead, the figure is the command's own.
"""

import resource
import subprocess
import sys

code = subprocess.call(sys.argv[1:])
print(f"PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", flush=True)
sys.exit(code)
