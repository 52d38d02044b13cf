"""GET /rest-auth as a DRF APIView: JWTAuthentication (settings) loads the user, IsAuthenticated guards it."""
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class RestAuth(APIView):
    """The protected resource: who the token's user is."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"message": "You are an authenticated person to see this message",
                         "user": {"id": request.user.id, "username": request.user.username}})
