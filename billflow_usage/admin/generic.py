"""Django's admin, form and paginator classes, typed by what they hold.

django-stubs makes ``ModelAdmin``, ``ModelForm`` and ``Paginator`` generic, so strict mypy
asks for ``ModelAdmin[Metric]``; Django's own classes can't be subscripted at run time, and
``django_stubs_ext.monkeypatch()`` would patch them for the whole host project. Here the type
checker sees django-stubs' generic classes, and the running code Django's own: at run time
``ModelAdmin[Metric]`` *is* ``django.contrib.admin.ModelAdmin``. Use them subscripted only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.core import paginator
from django.forms import models

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin
    ModelForm = models.ModelForm
    Paginator = paginator.Paginator
else:

    class _Subscriptable:
        """Stands for a Django class that subscripting gives back unchanged."""

        def __init__(self, cls: type) -> None:
            self._cls = cls

        def __getitem__(self, _held: object) -> type:
            return self._cls

        def __repr__(self) -> str:
            return f"{self._cls.__qualname__}[...]"

    ModelAdmin = _Subscriptable(admin.ModelAdmin)
    ModelForm = _Subscriptable(models.ModelForm)
    Paginator = _Subscriptable(paginator.Paginator)
