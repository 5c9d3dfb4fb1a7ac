"""What scripts/generate-service-model.py and scripts/generate-ec2-model.py share: reading a botocore service model
and writing the shapes Strait embeds as a Swift raw string of compact JSON."""
import gzip
import json
import os
import sys

import botocore

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def load_service(service: str, api_version: str) -> dict:
    """botocore's service-2.json for one service and API version."""
    path = os.path.join(os.path.dirname(botocore.__file__), "data", service, api_version, "service-2.json.gz")
    with gzip.open(path) as f:
        return json.load(f)


def write_swift(relative_path: str, header: list, variable: str, document: dict) -> str:
    """Writes `document` as compact JSON in a Swift raw string `variable`, one shape per line, under `header`
    (comment lines); returns the path written."""
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    if '"""#' in text:
        sys.exit("the model contains the raw-string terminator; change the delimiter")
    out = os.path.join(REPO, relative_path)
    with open(out, "w") as f:
        for line in header:
            f.write(f"// {line}\n")
        f.write(f'let {variable} = #"""\n')
        # Wrap at shape boundaries to keep lines reviewable; indented as swift-format leaves it.
        f.write("\n".join("    " + line for line in text.replace('},"', '},\n"').split("\n")))
        f.write('\n    """#\n')
    return os.path.normpath(out)
