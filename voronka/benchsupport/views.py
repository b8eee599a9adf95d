import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import BenchRow


@csrf_exempt
@require_POST
def baseline(request):
    """Parse the JSON body, insert one row, answer a tiny JSON: the floor a real endpoint is compared to."""
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "bad json"}, status=400)
    title = str(data.get("title") or "row")[:255] if isinstance(data, dict) else "row"
    row = BenchRow.objects.create(title=title)
    return JsonResponse({"id": row.pk}, status=201)
