"""Chatbot models arrive with the chatbot issue; the app exists so the project layout is stable."""
