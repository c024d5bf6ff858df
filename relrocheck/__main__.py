from relrocheck.cli import run

run()
