import sys

from streamlearn.ops.cli import main

sys.exit(main())
