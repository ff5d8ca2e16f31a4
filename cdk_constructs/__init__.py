"""Reusable CDK constructs of the Transient Trigger Pipeline: the package's public names, exported here.

Start with the two top-level constructs (docs/infrastructure.md, "Your own app.py")::

    from cdk_constructs import TtpCustomer, TtpCustomerProps, TtpPlatform, TtpPlatformProps, PlatformAccounts

* :class:`TtpPlatform` (``platform.py``): what the customers share, in the storage stack (management
  account: bucket and routing) and the platform stack (governance account: network, cluster, alarm
  topics, overview dashboard, sweeper, change coordinator).
* :class:`TtpCustomer` (``customer.py``): one customer, one instance: its stack in the governance account
  (queue + DLQ, processor, alarms, dashboard) and its stack in its own account (SES roles, configuration
  set, delivery events). It registers itself with the platform, whose customer lists are rendered at
  synthesis (``cdk_support.lazy``): nothing is listed by hand.

The building blocks they use are public too, one construct per module, each usable alone in another
CDK app: it takes its props (a frozen dataclass whose every field states its default) and interfaces
(``IQueue``, ``ICluster``, ...), never this project's stacks. ``RuntimeTaskBase`` is the base of the
constructs that run the runtime image (``CustomerProcessor``, ``Sweeper``, ``ChangeCoordinator``).
Non-construct helpers live in ``cdk_support``; the names and settings they share with the runtime come
from ``runtime.contract``.
"""

from cdk_constructs.alarm_topics import AlarmTopics, AlarmTopicsProps
from cdk_constructs.change_coordinator import ChangeCoordinator, ChangeCoordinatorProps, CoordinatorMeetings
from cdk_constructs.coordinator_alarms import CoordinatorAlarms, CoordinatorAlarmsProps
from cdk_constructs.customer import (
    TtpCustomer,
    TtpCustomerProps,
    customer_account_stack_name,
    customer_stack_name,
)
from cdk_constructs.customer_alarms import CustomerAlarms, CustomerAlarmsProps
from cdk_constructs.customer_dashboard import CustomerDashboard, CustomerDashboardProps
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_constructs.customer_ses_roles import CustomerSesRoles, CustomerSesRolesProps
from cdk_constructs.delivery_events import DeliveryEvents, DeliveryEventsProps
from cdk_constructs.event_queue import EventQueue, EventQueueProps, EventQueueSpec
from cdk_constructs.metadata_bucket import MetadataBucket, MetadataBucketProps, RoutedCustomer
from cdk_constructs.overview_dashboard import OverviewDashboard, OverviewDashboardProps
from cdk_constructs.platform import (
    PLATFORM_STACK,
    STORAGE_STACK,
    PlatformAccounts,
    PlatformMeetings,
    RegisteredCustomer,
    TtpPlatform,
    TtpPlatformProps,
)
from cdk_constructs.platform_network import ImportedVpc, PlatformNetwork, PlatformNetworkProps
from cdk_constructs.runtime_task import RuntimeTaskBase, RuntimeTaskBaseProps
from cdk_constructs.ses_delivery_events import SesDeliveryEvents, SesDeliveryEventsProps
from cdk_constructs.submission_site import SiteOidc, SubmissionSite, SubmissionSiteProps
from cdk_constructs.sweeper import Sweeper, SweeperProps
from cdk_constructs.task_execution_role import TaskExecutionRole, TaskExecutionRoleProps

__all__ = [
    "PLATFORM_STACK",
    "STORAGE_STACK",
    "AlarmTopics",
    "AlarmTopicsProps",
    "ChangeCoordinator",
    "ChangeCoordinatorProps",
    "CoordinatorAlarms",
    "CoordinatorAlarmsProps",
    "CoordinatorMeetings",
    "CustomerAlarms",
    "CustomerAlarmsProps",
    "CustomerDashboard",
    "CustomerDashboardProps",
    "CustomerProcessor",
    "CustomerProcessorProps",
    "CustomerQueue",
    "CustomerQueueProps",
    "CustomerSesRoles",
    "CustomerSesRolesProps",
    "DeliveryEvents",
    "DeliveryEventsProps",
    "EventQueue",
    "EventQueueProps",
    "EventQueueSpec",
    "ImportedVpc",
    "MetadataBucket",
    "MetadataBucketProps",
    "OverviewDashboard",
    "OverviewDashboardProps",
    "PlatformAccounts",
    "PlatformMeetings",
    "PlatformNetwork",
    "PlatformNetworkProps",
    "RegisteredCustomer",
    "RoutedCustomer",
    "RuntimeTaskBase",
    "RuntimeTaskBaseProps",
    "SesDeliveryEvents",
    "SesDeliveryEventsProps",
    "SiteOidc",
    "SubmissionSite",
    "SubmissionSiteProps",
    "Sweeper",
    "SweeperProps",
    "TaskExecutionRole",
    "TaskExecutionRoleProps",
    "TtpCustomer",
    "TtpCustomerProps",
    "TtpPlatform",
    "TtpPlatformProps",
    "customer_account_stack_name",
    "customer_stack_name",
]
