"""keystoneauth authentication for commands that call OpenStack APIs.

Arguments and ``OS_*`` environment variables come from keystoneauth's own
argparse loaders, as in python-openstackclient: ``--os-auth-type`` /
``OS_AUTH_TYPE`` picks the plugin (``password`` by default;
``v3applicationcredential`` for application credentials, ``token``,
``admin_token`` with ``--os-endpoint``, ...) and the options of that plugin
are registered (``--os-user-domain-id``, ``--os-project-domain-id``,
``--os-application-credential-id``, ...), with the session options
(``--os-cacert``, ``--insecure``, ``--timeout``).
"""

import os

from multimodal_virt import exception

DEFAULT_AUTH_TYPE = 'password'


def add_arguments(parser, argv=()):
    """Register keystoneauth's session and auth arguments on ``parser``.

    :param parser: an ``argparse`` parser (or argument group's parser).
    :param argv: the command line, read for ``--os-auth-type``.
    """
    from keystoneauth1 import loading

    loading.register_session_argparse_arguments(parser)
    loading.register_auth_argparse_arguments(parser, list(argv),
                                             default=DEFAULT_AUTH_TYPE)
    _add_hyphenated_spellings(parser)
    parser.add_argument('--os-region-name',
                        default=os.environ.get('OS_REGION_NAME'),
                        help='region of the endpoint (env OS_REGION_NAME)')
    parser.add_argument('--os-interface',
                        default=os.environ.get('OS_INTERFACE', 'public'),
                        help='endpoint interface (env OS_INTERFACE, '
                             'default public)')


def _add_hyphenated_spellings(parser):
    """Accept ``--os-application-credential-id`` as well.

    keystoneauth spells some plugin options with underscores
    (``--os-application_credential_id``); both spellings set the same
    value.
    """
    # argparse keeps its option table in _option_string_actions; adding a
    # spelling there is how add_argument itself registers one.
    table = parser._option_string_actions
    for option, action in list(table.items()):
        if option.startswith('--os-') and '_' in option:
            spelling = option.replace('_', '-')
            if spelling not in table:
                action.option_strings.append(spelling)
                table[spelling] = action


def load_session(args):
    """A keystoneauth session from arguments registered by add_arguments.

    :returns: ``keystoneauth1.session.Session``.
    :raises CloudApiError: naming the missing settings and their
        environment variables.
    """
    from keystoneauth1 import exceptions as ks_exceptions
    from keystoneauth1 import loading

    try:
        auth = loading.load_auth_from_argparse_arguments(args)
    except ks_exceptions.MissingRequiredOptions as err:
        wanted = ', '.join('%s (%s)' % (
            opt.argparse_args[0].replace('_', '-'),
            'OS_' + opt.dest.upper()) for opt in err.options)
        raise exception.CloudApiError(
            'no credentials for auth type %s: set %s (source your openrc, '
            'or set OS_AUTH_TYPE, e.g. v3applicationcredential)'
            % (args.os_auth_type or DEFAULT_AUTH_TYPE, wanted))
    return loading.load_session_from_argparse_arguments(args, auth=auth)
