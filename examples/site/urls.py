"""The site's URLs: each path, its view, a name for url() in templates."""

from ionet.web import path

from . import views

urlpatterns = [
    path("/", views.home, name="home"),
    path("/guestbook", views.guestbook, name="guestbook", methods=["GET", "POST"]),
    path("/api/messages", views.messages_json, name="messages_json"),
    path("/api/messages/<int:number>", views.message_json, name="message_json"),
    path("/word/<str:word>", views.word, name="word"),
    path("/hello", views.hello, name="hello"),
]
