"""`FileReader(CAPTURE).get_high_watermark_allocation_records()`: ours or
memray 1.20's, whichever `import memray` finds. Usage: reader_hwm.py CAPTURE"""

import sys
import time

from memray import FileReader

start = time.perf_counter()
records = list(FileReader(sys.argv[1]).get_high_watermark_allocation_records(merge_threads=True))
print("%d records in %.2f s" % (len(records), time.perf_counter() - start))
