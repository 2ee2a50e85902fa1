"""Which release of the core the upgrade test starts from.

``test_upgrade_in_flight.py`` builds prismq-queue-core as it was at this git ref, migrates
a database and leaves tasks in flight with it, then upgrades to the working tree's core.

At each release of prismq-queue-core, set this to the commit (or tag) of the release just
made, so that the next changes are tested against it: ``git log --oneline --
packages/prismq-queue-core`` shows the candidates, and a tag such as
``prismq-queue-core-v0.2.0`` works as well as a hash.
"""

from __future__ import annotations

#: The git ref of the core as last released: 0.1.0, as first released.
PREVIOUS_CORE_RELEASE_REF = "2432e22"
#: Where the core lives in the repository at that ref.
CORE_PATH_IN_REPOSITORY = "packages/prismq-queue-core"
