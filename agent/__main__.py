import sys

from custode.agent.cli import main

sys.exit(main())
