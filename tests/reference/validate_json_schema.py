#!/usr/bin/env python3
"""Independent check for Duet's constrained decoding: validates JSON documents against JSON schemas with the
`jsonschema` package (Debian python3-jsonschema), Draft 2020-12.

Input (argv[1]): a JSON file [{"schema": {...}, "documents": ["text", ...]}, ...].
Output (stdout): a JSON array of arrays of strings, one per document: "valid", or the reason it is not
("not JSON: ..." when the text does not parse, else the validator's first error)."""
import json
import sys

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    results = []
    for case in cases:
        validator = jsonschema.Draft202012Validator(case["schema"])
        row = []
        for text in case["documents"]:
            try:
                doc = json.loads(text)
            except ValueError as e:
                row.append(f"not JSON: {e}")
                continue
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            row.append("valid" if not errors else errors[0].message)
        results.append(row)
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
