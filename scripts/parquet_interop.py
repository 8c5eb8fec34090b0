#!/usr/bin/env python3
"""Parquet interoperability between driftd and pyarrow (the reference Parquet implementation).

Usage:
  parquet_interop.py read GENERATED.parquet GENERATED.csv
      Reads `driftd generate`'s Parquet with pyarrow, checks its schema (f0.. float32, label
      int64, ts int64) and that every value equals the CSV written from the same stream.
  parquet_interop.py write GENERATED.csv OUT.parquet OUT.csv
      Writes one history twice, as a user's pipeline would: a pyarrow Parquet file (snappy,
      float64 features, `when` as timestamp[us, UTC], `y` int64) and the same rows as CSV
      (`when` as RFC 3339 strings). Rows are shuffled, one feature is null and one label is
      not a class, so driftd's reader has to sort, skip and count the same rows in both.
Exits non-zero with a message on any mismatch.
"""
import csv
import datetime as dt
import random
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def check_generated(parquet_path, csv_path):
    table = pq.read_table(parquet_path)
    header, rows = read_csv(csv_path)
    if table.column_names != header:
        sys.exit(f"columns {table.column_names} != CSV header {header}")
    if table.num_rows != len(rows):
        sys.exit(f"{table.num_rows} Parquet rows != {len(rows)} CSV rows")
    for j, name in enumerate(header):
        col = table.column(name)
        if name.startswith("f"):
            want_type = pa.float32()
            want = np.array([r[j] for r in rows], dtype=np.float32)
        else:
            want_type = pa.int64()
            want = np.array([int(r[j]) for r in rows], dtype=np.int64)
        if col.type != want_type:
            sys.exit(f"column {name} is {col.type}, expected {want_type}")
        got = col.to_numpy()
        if not np.array_equal(got, want):
            bad = int(np.flatnonzero(got != want)[0])
            sys.exit(f"column {name} row {bad}: Parquet {got[bad]} != CSV {want[bad]}")
    print(f"ok: {table.num_rows} rows, {len(header)} columns")


def write_history(src_csv, out_parquet, out_csv):
    header, rows = read_csv(src_csv)
    features = [h for h in header if h.startswith("f")]
    label_at = header.index("label")
    order = list(range(len(rows)))
    random.Random(5).shuffle(order)
    start = dt.datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=dt.timezone.utc)
    when, cols, ys = [], {f: [] for f in features}, []
    for i in order:
        r = rows[i]
        when.append(start + dt.timedelta(minutes=i))
        for j, f in enumerate(features):
            cols[f].append(None if i == 3 else float(r[j]))
        # -1 is no class index (a label beyond the classes would be a new class).
        ys.append(-1 if i == 11 else int(r[label_at]))
    table = pa.table(
        {"when": pa.array(when, type=pa.timestamp("us", tz="UTC")),
         **{f: pa.array(v, type=pa.float64()) for f, v in cols.items()},
         "y": pa.array(ys, type=pa.int64())}
    )
    pq.write_table(table, out_parquet, compression="snappy")
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["when", *features, "y"])
        for k in range(len(order)):
            w.writerow([when[k].isoformat(),
                        *("" if cols[f][k] is None else repr(cols[f][k]) for f in features),
                        ys[k]])
    print(f"ok: wrote {len(order)} rows")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "read":
        check_generated(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "write":
        write_history(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
