"""Every ORM model of the data model (DESIGN.md §4); each lives in its domain package.

Importing this module registers every table on ``Base.metadata`` (Alembic's ``target_metadata``). Only the
migrations and tools that need the whole schema import it; domain code imports its own models.
"""

from core.alerts.models import *  # noqa: F403
from core.alerts.rule_models import *  # noqa: F403
from core.anomaly.models import *  # noqa: F403
from core.anomaly.reference_models import *  # noqa: F403
from core.auth.models import *  # noqa: F403
from core.db.base import Base
from core.events.models import *  # noqa: F403
from core.fleet.models import *  # noqa: F403
from core.incidents.models import *  # noqa: F403
from core.ingest.models import *  # noqa: F403
from core.ml.drift.models import *  # noqa: F403
from core.notifications.models import *  # noqa: F403
from core.readings.models import *  # noqa: F403
from core.simulation.models import *  # noqa: F403
from core.waveforms.models import *  # noqa: F403
from core.workorders.models import *  # noqa: F403

__all__ = ["Base"]
