from quantmatrix.cli import app

app()
