from django.db import models
from django.utils import timezone


class BenchRow(models.Model):
    """One row per baseline request: the cheapest write a Django view can make."""

    title = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.title
