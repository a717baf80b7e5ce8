"""The words the scrubber reasons with: given names, ordinary words, months, numbers in words.

All folded (lower case, no accents). `bot.privacy.scrub` uses them to tell a name after
"soy" / "habla" from an ordinary word ("soy migrante"), and to read dates and phone
numbers written in words. Data only: no logic beyond `ordinary`.
"""

from __future__ import annotations

__all__ = [
    "CONNECTORS",
    "GIVEN_NAMES",
    "LEXICON",
    "MONTHS",
    "NUMBER_WORDS",
    "STOP",
    "ordinary",
]

CONNECTORS = frozenset("de del la las los y".split())

# Words that end a name and never start one.
STOP = frozenset(
    """
    a al ante aqui ayer ayuda bien buenas buenos como con cual cuando de del desde dias donde
    e el en entonces es esta estoy fue gracias hace hola hoy la las le les lo los mas me mi mis
    manana necesito no noches o para pero pienso por porque pregunto pues puedo que queria quiero
    quisiera quien se si sin soy su sus tambien tardes te tengo tu un una uno unos unas vengo vivo
    voy ya yo trabajo ocupo deseo solicito consulto estuve vine llegue sali naci tuve fui hice hago
    ando andaba estaba perdi quede saque favor porfa urgente ahorita tenemos somos estamos
    tengo tenia tiene quiero quisiera necesitamos ocupamos busco buscando pido pedir y e ni
    mire oiga disculpe disculpa perdon permiso saludos dios bendiciones
    """.split()
)

# What follows "soy", "habla", "le escribe" when it is not a name: demonyms, roles, states,
# languages, pronouns, adverbs. A word not here (nor caught by the endings below) is taken
# for a name: keeping a name would be a leak, dropping an ordinary word a small loss.
LEXICON = frozenset(
    """
    guatemalteco guatemalteca guatemaltecos guatemaltecas chapin chapina chapines hondureno hondurena
    salvadoreno salvadorena mexicano mexicana nicaraguense costarricense panameno panamena
    beliceno belicena venezolano venezolana colombiano colombiana cubano cubana haitiano haitiana
    ecuatoriano ecuatoriana peruano peruana estadounidense americano americana latino latina
    extranjero extranjera migrante migrantes inmigrante emigrante deportado deportada deportados
    retornado retornada refugiado refugiada solicitante residente ciudadano ciudadana
    madre padre mama papa hijo hija esposo esposa hermano hermana tio tia abuelo abuela primo prima
    sobrino sobrina nieto nieta suegra suegro novio novia pareja familiar amigo amiga vecino vecina
    menor mayor maya mam kiche quiche qeqchi kekchi kaqchikel garifuna xinca ladino ladina indigena
    espanol castellano ingles frances aleman portugues idioma idiomas lengua kaqchiquel qanjobal
    poqomchi tzutujil ixil achi akateko chuj popti xinka awakateko sipakapense uspanteko
    estudiante trabajador trabajadora campesino campesina agricultor albanil jornalero jornalera
    maestro maestra profesor profesora doctor doctora enfermero enfermera piloto chofer comerciante
    vendedor vendedora cocinero cocinera mecanico carpintero pintor soldador costurera empleada
    empleado ama amo pastor abogado abogada periodista policia militar voluntario voluntaria
    nuevo nueva casado casada soltero soltera viudo viuda divorciado divorciada separado separada
    cristiano cristiana catolico catolica evangelico evangelica creyente
    muy tan bien mal yo usted ustedes el ella ellos un una uno de del la las lo mi su tu
    nacido nacida originario originaria victima persona mujer hombre joven nino nina adolescente
    senor senora senorita don dona sr sra srta lic licenciado licenciada ing ingeniero ingeniera
    legal ilegal indocumentado indocumentada documentado documentada pobre humilde sordo sorda
    ciego ciega discapacitado discapacitada enfermo enferma embarazada mayorcito capaz responsable
    solo sola soltera primera primero segundo segunda unico unica hija hijo otro otra alguien nadie
    quien cual aqui alla ahi asi igual parte miembro socio socia cliente usuario usuaria paciente
    nuevo consciente honesto honesta trabajadora sincero sincera feliz triste pobre rico rica
    gay lesbiana trans lgbt lgbti bisexual
    quetzalteco quetzalteca huehueteco huehueteca capitalino capitalina
    hablo habla hablan hablamos entiende entiendo escribe escribo
    de desde por para con sin en a al
    """.split()
)
# Endings of demonyms, roles and participles ("deportado", "solicitante", "salvadoreño").
_ORDINARY_ENDINGS = (
    "teco", "teca", "tecos", "tecas", "ense", "enses",
    "ado", "ada", "ados", "adas", "ido", "ida", "idos", "idas",
    "ante", "antes", "ente", "entes", "ista", "istas", "mente", "ivo", "iva", "oso", "osa", "ble",
)

GIVEN_NAMES = frozenset(
    """
    abel abigail adela adelaida adriana aida alba alberto alejandra alejandro alex alfredo alicia alma
    amalia ana andrea andres angel angela angelica anibal antonia antonio ariel arturo aurora axel
    bautista beatriz benito bernardo blanca brayan brenda byron candida carla carlos carmen carolina catalina
    cecilia celeste cesar claudia clemente cristian cristina cristobal damaris daniel daniela dante
    david delmy diana diego dolores domingo dulce edgar edwin eduardo elena elias elisa elsa elvis
    emilio enrique erica erick erika ernesto esperanza esteban ester esther eva evelyn fabiola
    fatima federico felipe fernanda fernando flor francisca francisco gabriel gabriela gaspar gerardo
    gladys gloria gonzalo graciela guadalupe guillermo gustavo hector heidy hilda hugo ignacio
    ingrid irma isabel ismael ivan jacinto jaime javier jennifer jessica jesus joel jonathan jorge
    jose josefa josue juan juana julia julio karen karla kevin laura leonor leticia lidia lilian
    lorena lucas lucia luis luisa luz manuel marco marcos margarita maria mariana mario marisol
    marta martha martin mateo matilde mauricio maynor melvin miguel milton miriam moises monica
    nancy natalia nelson nestor nicolas norma olga oscar pablo patricia paula pedro rafael ramiro
    ramon raquel raul rebeca reina ricardo roberto rocio rodrigo rosa rosario ruben ruth salvador
    samuel sandra santiago sara sebastian selvin sergio silvia sofia sonia susana teresa tomas
    vanessa veronica vicente victor virginia walter wendy william wilson yesenia yessica yolanda
    """.split()
)

MONTHS = (
    "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre"
).split()

# How many digits a number word stands for when a phone number is dictated.
NUMBER_WORDS: dict[str, int] = {
    **dict.fromkeys("cero uno una dos tres cuatro cinco seis siete ocho nueve".split(), 1),
    **dict.fromkeys(
        """diez once doce trece catorce quince dieciseis diecisiete dieciocho diecinueve veinte
        veintiuno veintiuna veintidos veintitres veinticuatro veinticinco veintiseis veintisiete
        veintiocho veintinueve treinta cuarenta cincuenta sesenta setenta ochenta noventa""".split(),
        2,
    ),
}


def ordinary(folded: str) -> bool:
    """A word that, after "soy" or "habla", is not a name (a known given name never is ordinary)."""
    folded = folded.replace("'", "")  # k'iche' = kiche
    if folded in GIVEN_NAMES:
        return False
    if len(folded) <= 2 or folded in LEXICON or folded in STOP or folded in CONNECTORS or folded in MONTHS:
        return True
    return len(folded) >= 6 and folded.endswith(_ORDINARY_ENDINGS)
