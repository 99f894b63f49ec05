"""`python -m imagegen.jobs.check_job JOB_FILE`: check a job without running it and print its
variants as JSON lines (or every error); `--schema` prints the job's JSON Schema."""

from __future__ import annotations

from imagegen.core.types import JobValidationError
from imagegen.jobs.spec import parse_job, render_schema
from imagegen.jobs.variants import expand


def main(argv: list[str] | None = None) -> int:
    """`python -m imagegen.jobs.check_job --schema` prints the schema; `python -m imagegen.jobs.check_job JOB`
    checks a job file and prints its variants as JSON lines (or its errors)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args == ["--schema"]:
        sys.stdout.write(render_schema())
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m imagegen.jobs.check_job --schema | JOB_FILE\n")
        return 2
    with open(args[0], "rb") as file:
        raw = file.read()
    try:
        job = parse_job(raw, filename=args[0])
    except JobValidationError as error:
        for item in error.errors:
            sys.stderr.write(f"{item.path or '(job)'}: {item.message} [{item.rule}]\n")
        return 1
    for variant in expand(job):
        sys.stdout.write(variant.model_dump_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
