"""Batch embedding from and to S3 vs local disk, and the driver's peak memory at two corpus sizes.

1. Throughput: the same WordNet glosses (Parquet, several files) embedded by the real bundled model, local ->
   local (baseline) then S3 -> S3 (moto's S3 server on 127.0.0.1, started here), on the same local Ray, same
   settings; prints texts/s of both and the ratio S3 / local.
2. Driver memory: the batch CLI's driver runs as a subprocess (connected to the same Ray) on a small and a
   large generated corpus (long texts; sizes ``--rss-small-mb`` / ``--rss-large-mb``, at least 10x apart)
   with a fast hash encoder (``--encoder-factory``) so that embedding gigabytes stays feasible on 2 cores;
   prints each corpus size next to the driver's peak RSS and the ratio large / small. The driver only lists
   files, receives per-file summaries and maps unit numbers, so its peak RSS should not follow the corpus.

Run in a loopback-only namespace (see README)::

    unshare -n sh -c 'ip link set lo up && exec "$@"' sh python benchmarks/batch_storage.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Represent the dictionary definition for retrieval: "
# Run by the driver subprocess: the batch CLI, then its own peak RSS (KiB) as the last line on stdout. VmHWM, not
# getrusage's ru_maxrss: Linux carries the forking parent's high-water mark over exec into ru_maxrss.
DRIVER = (
    "import sys\n"
    "from ray_backend.batch import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
    "print('peak_rss_kib', hwm)\n"
    "sys.exit(code)\n"
)


def _write_glosses(folder: Path, texts: list[str], files: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(texts) // files)
    for k in range(files):
        part = texts[k * per : (k + 1) * per]
        ids = list(range(k * per, k * per + len(part)))
        pq.write_table(pa.table({"id": ids, "text": part}), folder / f"part-{k}.parquet")


def _generate(folder: Path, megabytes: int, words: list[str], text_chars: int = 16_000) -> tuple[int, int]:
    """Write ~``megabytes`` of text as uncompressed, undictionaried Parquet files; returns (rows, text bytes).

    Texts cycle through a pool of 256 random word sequences (the ids are unique; the hash encoder does not
    care about repeats), so generating gigabytes takes seconds, while the files hold every byte.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    pool = [" ".join(rng.choices(words, k=text_chars // 5))[:text_chars] for _ in range(256)]
    rows = total = file = 0
    per_file = max(1, 200_000_000 // text_chars)  # ~200 MB files
    while total < megabytes * 1_000_000:
        n = min(per_file, -(-(megabytes * 1_000_000 - total) // text_chars))
        texts = [pool[(rows + i) % len(pool)] for i in range(n)]
        table = pa.table({"id": list(range(rows, rows + n)), "text": texts})
        pq.write_table(table, folder / f"part-{file:04d}.parquet", compression="none", use_dictionary=False)
        rows, total, file = rows + n, total + sum(len(t) for t in texts), file + 1
    return rows, total


def _timed_batch(inp: str, out: str, args: argparse.Namespace) -> float:
    from ray_backend.batch import BatchConfig, run_batch

    config = BatchConfig(
        input=inp,
        output=out,
        instruction=INSTRUCTION,
        replicas=args.replicas,
        batch_size=32,
        rows_per_shard=args.rows_per_shard,
        progress=False,
    )
    start = time.perf_counter()
    manifest = run_batch(config)
    return manifest.rows_out / (time.perf_counter() - start)


def throughput(args: argparse.Namespace, tmp: Path) -> None:
    from instructor_plugins.corpora import wordnet_synsets
    from tests.s3 import upload

    texts = [s.definition for s in wordnet_synsets("noun", limit=args.rows)]
    _write_glosses(tmp / "in", texts, files=4)
    local = _timed_batch(str(tmp / "in"), str(tmp / "out"), args)
    for path in sorted((tmp / "in").glob("*.parquet")):
        upload(path, f"s3://bench/in/{path.name}")
    remote = _timed_batch("s3://bench/in/", "s3://bench/out", args)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    print(f"throughput, {len(texts)} rows, {args.replicas} actors, bundled model (S3 = moto on {endpoint}):")
    print(f"  local -> local: {local:.1f} texts/s")
    print(f"  S3 -> S3:       {remote:.1f} texts/s")
    print(f"  ratio S3 / local: {remote / local:.3f}")


def driver_rss(args: argparse.Namespace, tmp: Path, address: str) -> None:
    from instructor_plugins.corpora import wordnet_synsets

    words = sorted({w for s in wordnet_synsets("noun", limit=5000) for w in s.definition.split()})
    results = []
    for label, megabytes in (("small", args.rss_small_mb), ("large", args.rss_large_mb)):
        folder = tmp / f"corpus-{label}"
        rows, size = _generate(folder, megabytes, words)
        cmd = [sys.executable, "-c", DRIVER, "--input", str(folder), "--output", str(tmp / f"out-{label}")]
        cmd += ["--encoder-factory", "instructor_plugins.testing:hash_encoder", "--model", "hash:16"]
        cmd += ["--replicas", str(args.replicas)]
        cmd += ["--rows-per-shard", "2000", "--no-progress", "--address", address]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"driver failed:\n{done.stderr[-3000:]}")
        peak_kib = int(done.stdout.strip().splitlines()[-1].split()[1])
        manifest = json.loads(done.stdout[: done.stdout.rindex("peak_rss_kib")])
        if manifest["rows_out"] != rows:
            raise SystemExit(f"expected {rows} rows out, the manifest says {manifest['rows_out']}")
        results.append((label, rows, size, peak_kib * 1024))
        print(
            f"  {label}: corpus {size / 1e6:,.0f} MB text in {rows:,} rows -> driver peak RSS "
            f"{peak_kib / 1024:,.0f} MB ({seconds:.0f} s, {rows / seconds:,.0f} rows/s)"
        )
        shutil.rmtree(folder)
    (_, _, small_size, small_rss), (_, _, large_size, large_rss) = results
    print(
        f"  corpus ratio large / small: {large_size / small_size:.1f}x; driver peak RSS ratio: "
        f"{large_rss / small_rss:.2f}; large corpus / driver peak RSS: {large_size / large_rss:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="WordNet glosses for the throughput comparison")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rows-per-shard", type=int, default=500)
    parser.add_argument("--rss-small-mb", type=int, default=500)
    parser.add_argument("--rss-large-mb", type=int, default=5000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-", dir="/tmp"))
    try:
        from tests.s3 import s3_server

        with s3_server("bench"):  # the AWS env is in place before Ray starts, so its workers inherit it
            ray.init(include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp / "ray"))
            if not args.skip_throughput:
                throughput(args, tmp)
            if not args.skip_rss:
                print("driver memory (fast hash encoder, the batch CLI as a subprocess):")
                driver_rss(args, tmp, ray.get_runtime_context().gcs_address)
            print(f"load average: {os.getloadavg()}")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
