"""``make demo``: question answering over a real corpus through the Ray Serve embedding app.

1. Start a local Ray and the Serve app (HTTP on 127.0.0.1 only) on the instruction-finetuned model
   that ``make finetune`` writes to ``runs/finetune/model`` when it exists, else on the bundled
   model; the first line printed says which.
2. Index every distinct chatterbot-corpus answer in a LangChain ``InMemoryVectorStore`` through
   ``InstructorEmbeddings(endpoint=...)`` with the ``qa`` preset's *document* instruction.
3. Ask chatterbot questions with its *query* instruction, print the hits, and score recall@5.
   A model that was not instruction-trained (the bundled one) gets no instructions: its own default.
4. Shut Serve down (the app, then the controller), then Ray.

Run inside a loopback-only network namespace on shared machines (the Makefile does that as root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ray_backend.net import free_port, init_local_ray, wait_healthy
from ray_backend.serving.ingress import plan_ingress, ray_has_direct_ingress

__all__ = ["FINETUNED_MODEL", "SHUTDOWN_NOISE", "choose_model", "dropping_lines", "main"]

# Where `make finetune` (python -m training.recipe --output runs/finetune) puts its model.
FINETUNED_MODEL = Path(__file__).resolve().parent.parent / "runs" / "finetune" / "model"


def choose_model(requested: str | None, finetuned: Path = FINETUNED_MODEL) -> tuple[str | None, str]:
    """The model to serve and a line saying which: ``requested``, else the finetuned one if built, else bundled."""
    if requested:
        return requested, f"model: {requested} (--model)"
    if (finetuned / "modules.json").is_file():
        return str(finetuned), f"model: {finetuned} (instruction-finetuned by `make finetune`)"
    return None, "model: bundled all-MiniLM-L6-v2 (run `make finetune` to build and use the instruction-finetuned one)"


# The one line Ray prints on every `serve.shutdown()` (ray 2.60): Serve's client waits on the controller's
# graceful_shutdown call, which by design only ends when the controller kills itself, and the driver is then told
# that the call failed and will be retried. Nothing failed; the demo drops exactly this line.
SHUTDOWN_NOISE = ("Task ServeController.graceful_shutdown failed.", "killed by `ray.kill`")


class _LineFilter(io.TextIOBase):
    """A text stream that passes whole lines to ``target``, except those containing every one of ``needles``."""

    def __init__(self, target: TextIO, needles: tuple[str, ...]) -> None:
        self._target, self._needles = target, needles
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                if not all(needle in line for needle in self._needles):
                    self._target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending and not all(needle in self._pending for needle in self._needles):
                self._target.write(self._pending)
            self._pending = ""
            self._target.flush()


@contextlib.contextmanager
def dropping_lines(*needles: str) -> Iterator[None]:
    """Inside the block, stdout lines that contain every one of ``needles`` are not printed.

    >>> with dropping_lines("graceful_shutdown failed", "ray.kill"):
    ...     print("kept")
    ...     print("Task ServeController.graceful_shutdown failed. ... killed by `ray.kill`.")
    kept
    """
    stdout = sys.stdout
    sys.stdout = _LineFilter(stdout, needles)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


async def _ask_all(store: Any, questions: list[str], *, concurrency: int) -> list[list[Any]]:
    # Concurrent queries: the replica's @serve.batch folds them into shared forward passes.
    gate = asyncio.Semaphore(concurrency)

    async def ask(question: str) -> list[Any]:
        async with gate:
            found: list[Any] = await store.asimilarity_search(question, k=5)
            return found

    return list(await asyncio.gather(*(ask(q) for q in questions)))


def run_demo(url: str, *, questions: int = 80, show: int = 5) -> float:
    """Index the corpus through ``url`` and answer questions; returns recall@5."""
    from langchain_core.vectorstores import InMemoryVectorStore

    from instructor_plugins.corpora import chatterbot_pairs
    from instructor_plugins.langchain import InstructorEmbeddings

    pairs = chatterbot_pairs()
    answers = sorted({p.answer for p in pairs})
    embeddings = InstructorEmbeddings(endpoint=url, batch_size=64)
    if embeddings.model_defaults.instruction_trained:
        embeddings = InstructorEmbeddings.for_task("qa", endpoint=url, batch_size=64)
        print(f"query instruction:    {embeddings.query_instruction!r}")
        print(f"document instruction: {embeddings.document_instruction!r}")
    else:  # the model's own default: such a model embeds best without instructions
        print("instructions: none (this model was not instruction-trained; `make finetune` builds one that is)")

    start = time.perf_counter()
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_texts(answers)
    took = time.perf_counter() - start
    print(f"indexed {len(answers)} chatterbot answers via {url} in {took:.1f}s ({len(answers) / took:.0f} texts/s)")

    good: dict[str, set[str]] = {}
    for p in pairs:
        good.setdefault(p.question, set()).add(p.answer)
    asked = sorted(good)[:: max(1, len(good) // questions)][:questions]
    start = time.perf_counter()
    results = asyncio.run(_ask_all(store, asked, concurrency=16))
    hits = 0
    for i, (question, found) in enumerate(zip(asked, results, strict=True)):
        hits += any(doc.page_content in good[question] for doc in found)
        if i < show:
            print(f"\nQ: {question}")
            for rank, doc in enumerate(found[:3], 1):
                mark = "*" if doc.page_content in good[question] else " "
                print(f"  {rank}.{mark} {doc.page_content[:110]}")
    took = time.perf_counter() - start
    recall = hits / len(asked)
    rate = len(asked) / took
    print(f"\nrecall@5 over {len(asked)} questions: {recall:.2f} ({rate:.0f} queries/s; * = a true answer)")
    return recall


def main(argv: list[str] | None = None) -> None:
    """Start Ray + Serve, run the demo, shut down; assert the retrieval works."""
    parser = argparse.ArgumentParser(prog="python -m ray_backend.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=80, help="questions to score")
    parser.add_argument("--replicas", type=int, default=1, help="encoder replicas")
    parser.add_argument(
        "--model", default=None, help=f"model to serve (default: {FINETUNED_MODEL} if built, else bundled)"
    )
    cli = parser.parse_args(argv)
    model, which = choose_model(cli.model)
    print(which, flush=True)

    import ray
    from ray import serve

    from ray_backend.serve import APP_NAME, build_app

    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="ray-demo-")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cpus = max(2, os.cpu_count() or 2)
    # Requests enter as under `instructor serve` (one replica: the replica answers HTTP itself).
    plan = plan_ingress(
        "auto",
        port=free_port(),
        replicas=cli.replicas,
        starts_ray=True,
        free_port=free_port,
        direct_supported=ray_has_direct_ingress(ray.__version__),
    )
    os.environ.update(plan.env(os.environ))
    # Token authentication stays on (Ray's default for a local cluster); only Ray's note that it can be turned off
    # is not printed.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # Ray starts workers at nice 15; on a shared machine that starves the replica, so serve at normal priority.
    init_local_ray(
        num_cpus=cpus,
        _temp_dir=tmp,
        log_to_driver=False,
        _system_config={"worker_niceness": 0},
    )
    deployed = False
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": plan.proxy_port}, logging_config={"enable_access_log": False}
        )
        app_args: dict[str, Any] = {"num_replicas": cli.replicas}  # the default sizing: replicas share the CPUs
        if model is not None:
            app_args["model"] = model
        serve.run(build_app(app_args), name=APP_NAME, route_prefix="/")
        deployed = True
        url = f"http://127.0.0.1:{plan.port}"
        wait_healthy(url)
        print(f"Serve app up at {url} ({plan.mode} ingress) after {time.perf_counter() - started:.1f}s")
        recall = run_demo(url, questions=cli.questions)
    finally:
        # Serve first, in the order Ray expects: the app deleted (waiting for its deployments to go), then Serve's
        # controller and proxies, then Ray.
        with dropping_lines(*SHUTDOWN_NOISE):
            if deployed:
                serve.delete(APP_NAME)
            serve.shutdown()
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"demo finished in {time.perf_counter() - started:.1f}s ({which})")
    if recall < 0.5:
        raise SystemExit(f"recall@5 {recall:.2f} is far below what the bundled model reaches")


if __name__ == "__main__":
    main()
