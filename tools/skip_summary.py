#!/usr/bin/env python3
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Print what the last stestr run skipped, grouped by reason.

stestr counts skips but does not say why; a skip hides what was not
tested, so tox prints this after every test run. Arguments go to stestr
before ``last`` (e.g. ``--test-path ...``). Always exits 0: the run's own
exit status says whether tests failed.
"""

import collections
import io
import subprocess
import sys

import subunit
import testtools


def skipped(stream: bytes) -> dict[str, list[str]]:
    """{reason: [test ids]} of the skipped tests of a subunit v2 stream."""
    found = collections.defaultdict(list)

    def on_test(test):
        if test['status'] != 'skip':
            return
        reason = test['details'].get('reason')
        text = reason.as_text().strip() if reason else '(no reason given)'
        found[text].append(test['id'])

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        subunit.ByteStreamToStreamResult(io.BytesIO(stream)).run(result)
    finally:
        result.stopTestRun()
    return found


def main(argv: list[str]) -> int:
    # The stestr of this interpreter: tox runs this script in its venv.
    proc = subprocess.run([sys.executable, '-m', 'stestr'] + argv
                          + ['last', '--subunit'], capture_output=True)
    if proc.returncode:
        print('skip summary: no stestr run to read (%s)'
              % proc.stderr.decode(errors='replace').strip())
        return 0
    found = skipped(proc.stdout)
    total = sum(len(ids) for ids in found.values())
    print('Skipped tests: %d' % total)
    for reason, ids in sorted(found.items(), key=lambda kv: -len(kv[1])):
        print('  %d skipped: %s' % (len(ids), reason))
        for test_id in sorted(ids):
            print('      %s' % test_id)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
