"""URL map; the names are the contract in shared/DESIGN.md."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .audit import views as audit
from .containers import views as containers
from .gateways import views as gateways
from .health import healthz
from .instances import views as instances
from .pulls import views as pulls

urlpatterns = [
    path("", instances.instance_list, name="instance-list"),
    path("instances/new/", instances.instance_create, name="instance-create"),
    path("instances/<int:pk>/", instances.instance_detail, name="instance-detail"),
    path("instances/<int:pk>/edit/", instances.instance_edit, name="instance-edit"),
    path("instances/<int:pk>/delete/", instances.instance_delete, name="instance-delete"),
    path("instances/<int:pk>/pull/", instances.instance_pull, name="instance-pull"),
    path("instances/<int:pk>/container/", containers.instance_container, name="instance-container"),
    path("instances/<int:pk>/container/output/", containers.instance_logs, name="instance-logs"),
    path("instances/<int:pk>/container/<slug:action>/", containers.container_action, name="container-action"),
    path("gateways/", gateways.gateway_list, name="gateway-list"),
    path("gateways.json", gateways.gateway_json, name="gateway-json"),
    path("gateways/add/", gateways.gateway_add, name="gateway-add"),
    path("gateways/<slug:name>/", gateways.gateway_detail, name="gateway-detail"),
    path("pulls/<int:pk>/", pulls.pull_detail, name="pull-detail"),
    path("pulls/<int:pk>.json", pulls.pull_json, name="pull-json"),
    path("pulls/<int:pk>/cancel/", pulls.pull_cancel, name="pull-cancel"),
    path("audit/", audit.audit_list, name="audit"),
    # The check needs stored passwords and operator rights, which only this app knows.
    path("registries/check/", instances.registry_check, name="registry-check"),
    path("registries/check/<uuid:request_id>.json", instances.check_answer, name="check-answer"),
    path("registries/", include("registries.urls")),
    path("agent/v1/", include("orchestrator.agentapi.urls")),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
