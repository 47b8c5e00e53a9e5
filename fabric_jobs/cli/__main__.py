import sys

from fabric_jobs.cli import main

sys.exit(main())
