"""The web UI (`facewright serve`): a FastAPI app whose pages call facewright.api and nothing deeper.

app.py builds it; security.py and browse.py decide who may use it and what it may read; jobs.py and worker.py
run the long work; pages.py, actions.py and files.py are its routes; templates/ and static/ are its pages.
"""
