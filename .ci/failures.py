"""Print the tail of every failing test's report from a pytest JUnit XML file (stdlib only)."""

import sys
import xml.etree.ElementTree as ET

TAIL = 60  # lines of each report

root = ET.parse(sys.argv[1]).getroot()
failed = 0
for case in root.iter("testcase"):
    for problem in [*case.findall("failure"), *case.findall("error")]:
        failed += 1
        name = f"{case.get('classname')}::{case.get('name')}"
        lines = ((problem.get("message") or "") + "\n" + (problem.text or "")).strip().splitlines()
        print(f"--- {problem.tag}: {name} ({case.get('time')} s)")
        print("\n".join(lines[-TAIL:]))
        for stream in ("system-out", "system-err"):
            captured = case.findtext(stream)
            if captured:
                print(f"  [{stream}, last lines]")
                print("\n".join(captured.strip().splitlines()[-20:]))
print(f"=== {failed} failing test report(s) above")
