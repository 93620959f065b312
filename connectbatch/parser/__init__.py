"""The typed CSV parser: bytes in, a typed Arrow table plus row rejects out.

In the order a file goes through it:
- `api`: `parse_bytes` / `parse_file`, compressed inputs, the header, choosing a core;
- `options`: `ParseOptions`, every setting of one parse in one value;
- `decode`: from the file's bytes to UTF-8 chunks (BOMs, UTF-16, latin-1/cp1252);
- `plan`: the header-to-schema plan both cores share, reject wording, the final table;
- the cores: `connectbatch._csvcore` (Cython, the fast one) and `refcore` (pure Python, the
  executable specification they are held equal to).

Every typed table starts here, so this is where the process's Arrow memory pool is chosen
(`connectbatch.arrow_memory`), before the first batch is allocated.
"""

from connectbatch import arrow_memory
from connectbatch.parser.api import ParseResult, Reject, check_timezone, parse_bytes, parse_file
from connectbatch.parser.options import ParseOptions

arrow_memory.configure()  # importing the modules above allocates no table

__all__ = ["ParseOptions", "ParseResult", "Reject", "check_timezone", "parse_bytes", "parse_file"]
