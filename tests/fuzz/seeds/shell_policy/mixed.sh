df -h | tail -1; echo "$(uname -a)" > /tmp/x && sudo -u bob sh -c 'rm -rf /tmp/y'
