"""``safeconsult deidentify IN... --out DIR``: DICOM PS3.15 Annex E Basic Profile export.

Prints counts and, per file, a number (never the source path: folder names often carry a
patient's name), the output name, warnings (e.g. burned-in annotation) or the error.
Exit codes: 0 every file written, 1 some files failed or carry a burned-in-text warning,
2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safeconsult deidentify",
        description="Write de-identified copies of DICOM files (PS3.15 Annex E Basic Profile).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IN",
                        help="DICOM files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder (files are named IM00001.dcm, ...)")
    parser.add_argument("--retain-dates", action="store_true",
                        help="Retain Longitudinal Temporal Information option")
    parser.add_argument("--date-shift-days", type=int, default=0, metavar="N",
                        help="with --retain-dates: shift every date by N days, consistently")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.date_shift_days and not args.retain_dates:
        print("safeconsult deidentify: --date-shift-days needs --retain-dates", file=sys.stderr)
        return 2
    from app.imaging.deidentify import deidentify_paths

    report = deidentify_paths(args.inputs, args.out, retain_dates=args.retain_dates,
                              date_shift_days=args.date_shift_days)
    warned = 0
    for number, item in enumerate(report.files, start=1):
        if item.error is not None:
            print(f"  file {number}: not written -- {item.error.user_message}")
        else:
            name = item.output.name if item.output is not None else "?"
            for warning in item.warnings:
                warned += 1
                print(f"  file {number} -> {name}: WARNING {warning}")
    print(f"{report.written} written, {report.failed} failed; "
          f"method {', '.join(report.method_codes)}; table {report.table}")
    return 1 if report.failed or warned else 0


if __name__ == "__main__":
    sys.exit(main())
