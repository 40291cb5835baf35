"""Admin: the same form and validation as the console, plus a "Pull now" action."""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from .audit.record import diff, snapshot
from .containers.spec import CONTAINER_SECTIONS
from .instances.actions import delete_instances, instance_saved, pull_instance
from .instances.forms import AWS_FIELDS, DOWNLOAD_FIELDS, IMAGE_FIELDS, ContainerInstanceForm
from .models import AuditEntry, ContainerInstance, PullJob
from .security.roles import PULL_INSTANCE


class AdminInstanceForm(ContainerInstanceForm):
    # The admin's fieldsets are fixed, so it cannot show the confirmation box; its delete page asks instead.
    ask_to_confirm_disable = False

    class Meta(ContainerInstanceForm.Meta):
        pass


@admin.register(ContainerInstance)
class ContainerInstanceAdmin(admin.ModelAdmin):
    form = AdminInstanceForm
    list_display = (
        "name",
        "enabled",
        "image_name",
        "image_tag",
        "registry_url",
        "registry_username",
        "password_state",
        "updated_at",
    )
    list_filter = ("enabled",)
    search_fields = ("name", "image_name", "registry_url", "registry_username")
    actions = ["pull_now"]
    fieldsets = (
        (None, {"fields": ("gateway", "name", "enabled")}),
        ("Image and registry", {"fields": (*IMAGE_FIELDS, "digest_pin")}),
        ("AWS ECR password source", {"fields": AWS_FIELDS}),
        ("Download", {"fields": DOWNLOAD_FIELDS}),
        *((legend, {"fields": names, "classes": ("collapse",)}) for legend, names in CONTAINER_SECTIONS),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form):
            # The same host access rules as the console: they depend on who submits.
            def __init__(self, *args, **form_kwargs) -> None:
                super().__init__(*args, user=request.user, **form_kwargs)

        return WithUser

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Unlike ModelAdmin's, not one transaction around the whole page: the form's access check waits for the
        # gateway's agent, which must see the request (and, on SQLite, be able to write its answer) meanwhile.
        # save_model commits the instance and what follows from it together.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        before = snapshot(obj)
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            moved_from = form.initial.get("gateway") if change and "gateway" in form.changed_data else None
            instance_saved(obj, created=not change, request=request, changes=diff(form, before), moved_from=moved_from)

    def delete_model(self, request, obj) -> None:
        delete_instances([obj], request=request)

    def delete_queryset(self, request, queryset) -> None:
        delete_instances(queryset, request=request)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.registry_password:
            fieldsets = list(fieldsets)
            fieldsets[1] = ("Image and registry", {"fields": (*fieldsets[1][1]["fields"], "clear_password")})
        return fieldsets

    @admin.display(description="password")
    def password_state(self, obj: ContainerInstance) -> str:
        if not obj.registry_password:
            return "none"
        if obj.password_expired:
            return "stored (expired)"
        return "stored"

    @admin.action(description="Pull now", permissions=["pull"])
    def pull_now(self, request, queryset):
        queued = attached = 0
        for instance in queryset:
            _, created = pull_instance(instance, request, how="from the admin")
            queued += created
            attached += not created
        self.message_user(request, f"Queued {queued} pull(s); {attached} already under way.", messages.SUCCESS)

    def has_pull_permission(self, request) -> bool:
        return request.user.has_perm(PULL_INSTANCE)


@admin.register(PullJob)
class PullJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "instance",
        "reference",
        "state",
        "progress_display",
        "attempt",
        "error_code",
        "queued_at",
        "finished_at",
    )
    list_filter = ("state", "error_code")
    search_fields = ("instance__name", "reference", "digest")
    list_select_related = ("instance",)
    date_hierarchy = "queued_at"
    readonly_fields = [field.name for field in PullJob._meta.fields] + ["status_page"]

    @admin.display(description="progress")
    def progress_display(self, obj: PullJob) -> str:
        if obj.progress is not None:
            return f"{obj.progress}%"
        if obj.layers_total:
            return f"{obj.layers_done} of {obj.layers_total} layers"
        return "—"

    @admin.display(description="status page")
    def status_page(self, obj: PullJob) -> str:
        return format_html('<a href="{}">live status</a>', obj.get_absolute_url())

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read only: entries are written by orchestrator.audit.record and removed only by pruning."""

    list_display = ("at", "username", "address", "action", "instance_name", "message")
    list_filter = ("action", "at")
    search_fields = ("username", "instance_name")
    date_hierarchy = "at"
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
