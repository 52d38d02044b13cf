"""startproject's admin route, Simple JWT's two token views (its getting-started page), the protected view."""
from django.contrib import admin
from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from benchsite.views import RestAuth

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("rest-auth", RestAuth.as_view(), name="rest_auth"),
]
