from django.urls import path

from . import views

urlpatterns = [
    path("decode/", views.decode, name="registry-decode"),
]
