"""keystoneauth loading for ``flavor create`` (multimodal_virt.cli.auth)."""

import argparse

import fixtures

from multimodal_virt.cli import auth
from multimodal_virt import exception
from tests import base

OS_VARIABLES = ('OS_AUTH_TYPE', 'OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
                'OS_PROJECT_NAME', 'OS_PROJECT_ID', 'OS_USER_DOMAIN_ID',
                'OS_USER_DOMAIN_NAME', 'OS_PROJECT_DOMAIN_ID',
                'OS_PROJECT_DOMAIN_NAME', 'OS_APPLICATION_CREDENTIAL_ID',
                'OS_APPLICATION_CREDENTIAL_SECRET', 'OS_ENDPOINT', 'OS_TOKEN',
                'OS_CLOUD', 'OS_REGION_NAME', 'OS_INTERFACE', 'OS_CACERT')


def _parse(*argv):
    parser = argparse.ArgumentParser()
    auth.add_arguments(parser, argv)
    return parser.parse_args(list(argv))


class LoadSessionTest(base.TestCase):

    def setUp(self):
        super().setUp()
        for name in OS_VARIABLES:
            self.useFixture(fixtures.EnvironmentVariable(name))

    def test_password_with_domain_ids(self):
        session = auth.load_session(_parse(
            '--os-auth-url', 'http://k/identity', '--os-username', 'u',
            '--os-password', 'p', '--os-project-name', 'demo',
            '--os-user-domain-id', 'default',
            '--os-project-domain-id', 'default'))
        plugin = session.auth
        self.assertEqual('http://k/identity', plugin.auth_url)
        self.assertEqual('default', plugin._user_domain_id)
        self.assertEqual('default', plugin._project_domain_id)

    def test_application_credential_from_environment(self):
        for name, value in (('OS_AUTH_TYPE', 'v3applicationcredential'),
                            ('OS_AUTH_URL', 'http://k/identity/v3'),
                            ('OS_APPLICATION_CREDENTIAL_ID', 'cred'),
                            ('OS_APPLICATION_CREDENTIAL_SECRET', 's3')):
            self.useFixture(fixtures.EnvironmentVariable(name, value))
        session = auth.load_session(_parse())
        method = session.auth.auth_methods[0]
        self.assertEqual('cred', method.application_credential_id)
        self.assertEqual('s3', method.application_credential_secret)

    def test_application_credential_arguments_both_spellings(self):
        for spelling in ('--os-application-credential-id',
                         '--os-application_credential_id'):
            session = auth.load_session(_parse(
                '--os-auth-type', 'v3applicationcredential',
                '--os-auth-url', 'http://k/identity/v3', spelling, 'cred',
                '--os-application-credential-secret', 's'))
            method = session.auth.auth_methods[0]
            self.assertEqual('cred', method.application_credential_id)

    def test_auth_type_argument_and_admin_token(self):
        session = auth.load_session(_parse(
            '--os-auth-type', 'admin_token', '--os-endpoint',
            'http://n/v2.1', '--os-token', 't'))
        self.assertEqual({'X-Auth-Token': 't'},
                         session.auth.get_headers(session))
        self.assertEqual('http://n/v2.1', session.get_endpoint(
            service_type='compute'))

    def test_missing_credentials_are_named(self):
        err = self.assertRaises(exception.CloudApiError, auth.load_session,
                                _parse())
        self.assertIn('--os-auth-url (OS_AUTH_URL)', str(err))
        self.assertIn('auth type password', str(err))

    def test_session_options(self):
        session = auth.load_session(_parse(
            '--os-auth-type', 'admin_token', '--os-endpoint', 'http://n',
            '--os-token', 't', '--insecure', '--timeout', '7'))
        self.assertFalse(session.verify)
        self.assertEqual(7.0, session.timeout)
