"""URL map; the names are the contract in shared/DESIGN.md."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.instance_list, name="instance-list"),
    path("instances/new/", views.instance_create, name="instance-create"),
    path("instances/<int:pk>/", views.instance_detail, name="instance-detail"),
    path("instances/<int:pk>/edit/", views.instance_edit, name="instance-edit"),
    path("instances/<int:pk>/delete/", views.instance_delete, name="instance-delete"),
    path("instances/<int:pk>/pull/", views.instance_pull, name="instance-pull"),
    path("instances/<int:pk>/container/", views.instance_container, name="instance-container"),
    path("instances/<int:pk>/container/<slug:action>/", views.container_action, name="container-action"),
    path("pulls/<int:pk>/", views.pull_detail, name="pull-detail"),
    path("pulls/<int:pk>.json", views.pull_json, name="pull-json"),
    path("pulls/<int:pk>/cancel/", views.pull_cancel, name="pull-cancel"),
    # The check needs stored passwords and operator rights, which only this app knows.
    path("registries/check/", views.registry_check, name="registry-check"),
    path("registries/", include("registries.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
