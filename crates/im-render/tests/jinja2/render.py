"""Renders the differential template corpus with Python's Jinja2.

Reads a job as JSON on stdin: {"root": DIR, "cases": [{"name", "dir", "template", "context"}]},
where each template is the file DIR/<dir>/<template>. Writes JSON on stdout:
{"version": jinja2.__version__, "results": {name: {"ok": text} | {"error": message}}}.

The environment mirrors image-manager's engine: strict undefined values, no autoescaping,
the trailing newline kept, loop controls, includes looked up next to the template and then
in the project's templates/ folder, and a final newline added to output that lacks one.
"""

import json
import sys

import jinja2
from jinja2 import Environment, FileSystemLoader, StrictUndefined


def main() -> None:
    job = json.load(sys.stdin)
    root = job["root"]
    results = {}
    for case in job["cases"]:
        env = Environment(
            loader=FileSystemLoader([f"{root}/{case['dir']}", f"{root}/templates"]),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            extensions=["jinja2.ext.loopcontrols"],
        )
        try:
            text = env.get_template(case["template"]).render(case["context"])
            if not text.endswith("\n"):
                text += "\n"
            results[case["name"]] = {"ok": text}
        except Exception as error:  # every failure is a result to compare
            results[case["name"]] = {"error": f"{type(error).__name__}: {error}"}
    json.dump({"version": jinja2.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
