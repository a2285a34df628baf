# What an operator sees: one start-up line per hub (where it is mounted, its store, its
# durability, the version), store files only Apache's user can read, each refusal's reason at
# LogLevel debug (without the key that was tried), and configtest's messages at the line of
# the directive that is wrong.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use lib 't/lib';
use OSTest;

my $v    = Apache::Test::vars();
my $top  = $v->{top_dir};
my $logs = $v->{t_logs};
my $pg   = ($ENV{OS_TEST_LABEL} // '') eq 'pg';
plan tests => 11;

my ($version) = read_file("$top/include/mod_ordersync.h") =~ /^#define OS_VERSION "([^"]+)"/m;
ok($version, "the version is written in include/mod_ordersync.h ($version)");

# --- the start-up line
my $log = read_file("$logs/error_log");
my @lines = grep { /\[ordersync:notice\].*ordersync \Q$version\E: hub at / } split /\n/, $log;
ok(scalar(grep { m{hub at <Location /ordersync> of } } @lines), 'a notice line names the hub\'s <Location> and the version')
    or diag(join "\n", @lines);
if ($pg) {
    ok(scalar(grep { m{store pgsql host=\S+ port=\d+ dbname=ordersync user=postgres, durability normal} } @lines),
       'it names the PostgreSQL store (host, port, database, user)') or diag(join "\n", @lines);
}
else {
    ok(scalar(grep { m{store sqlite3 \Q$logs\E/ordersync\.db, durability normal} } @lines),
       'it names the SQLite store\'s file and the durability') or diag(join "\n", @lines);
}
ok(scalar(grep { m{delivers none \(no OrderSyncClougisticURL\)} } @lines),
   'it says when a hub delivers nowhere');
ok(!grep({ /password/i } @lines), 'no store password in it');

# --- the store's files: Apache's user only
SKIP: {
    skip 'PostgreSQL keeps its own files', 1 if $pg;
    my @loose = grep { -e $_ && ((stat $_)[2] & 077) }
                map { "$logs/ordersync.db$_" } ('', '-wal', '-shm');
    ok(!@loose, 'the store and its -wal/-shm files are readable by their owner only (0600)')
        or diag(join ', ', map { sprintf '%s %04o', $_, (stat $_)[2] & 07777 } @loose);
}

# --- refusals explained at debug, without the key
sub log_after {
    my ($size, $request) = @_;
    $request->();
    my $all = read_file("$logs/error_log");
    return substr($all, $size);
}
my $size = -s "$logs/error_log";
my $res;
my $new = log_after($size, sub { $res = req('POST', hub_url('/orders'), ['Content-Type' => 'application/json'], '{}') });
is($res->code, 401, 'no key: 401');
like($new, qr{ordersync: POST /ordersync/orders: 401 unauthorized: .*no Bearer}i,
     'the debug log says the request had no Bearer key');
my $wrong = 'wrong-key-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 20);
$size = -s "$logs/error_log";
$new = log_after($size, sub {
    $res = req('POST', hub_url('/orders'), ['Content-Type' => 'application/json',
                                           Authorization => "Bearer $wrong"], '{}') });
like($new, qr{ordersync: POST /ordersync/orders: 401 unauthorized: the Bearer key is not the key of any source},
     'an unknown key: the debug log says so');
unlike(read_file("$logs/error_log"), qr/\Q$wrong\E/, 'the key that was tried is not logged');

# --- configtest points at the directive's own line
my ($rc, $out) = configtest("LoadModule dbd_module /usr/lib/apache2/modules/mod_dbd.so\n"
    . "LoadModule ordersync_module \@SO\@\nDBDriver sqlite3\nDBDParams \@DIR\@/os.db\n"
    . "OrderSyncSource demo key=file:\@KEYS\@/demo.key\nOrderSyncAdminKey \${OS_UNSET_ADMIN_FOR_TEST}\n"
    . "<Location /ordersync>\n  SetHandler ordersync\n</Location>\n");
my ($file, $line) = $out =~ /ordersync: (\S+\/httpd\.conf):(\d+): OrderSyncAdminKey still contains/;
my @conf = $file ? split(/\n/, read_file($file)) : ();
like($line && $conf[$line - 1] // '', qr/^OrderSyncAdminKey \$\{OS_UNSET_ADMIN_FOR_TEST\}$/,
     'an unset variable is reported at its directive\'s file and line, with its name')
    or diag($out);
